package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// testPKI is a throwaway CA and a server certificate for 127.0.0.1 it
// signed, as PEM files in a temporary directory.
type testPKI struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	writeFile(t, p.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, p.certFile, string(certPEM))
	writeFile(t, p.keyFile, string(keyPEM))
	if p.server, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLSConfigBuild(t *testing.T) {
	p := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	writeFile(t, notPEM, "hello\n")
	for _, c := range []struct {
		name    string
		cfg     tlsConfig
		certs   int
		wantErr string
	}{
		{"system roots", tlsConfig{Enabled: true}, 0, ""},
		{"ca and client certificate", tlsConfig{Enabled: true, CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}, 1, ""},
		{"missing ca file", tlsConfig{Enabled: true, CAFile: p.caFile + ".missing"}, 0, "kafka.tls.ca_file"},
		{"ca file not pem", tlsConfig{Enabled: true, CAFile: notPEM}, 0, "no PEM certificate"},
		{"key does not parse", tlsConfig{Enabled: true, CertFile: p.certFile, KeyFile: notPEM}, 0, "kafka.tls.cert_file/key_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc, err := c.cfg.build("kafka.tls")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.Certificates) != c.certs || tc.InsecureSkipVerify || tc.MinVersion < tls.VersionTLS12 {
				t.Errorf("unexpected tls.Config: %d certificates, skip verify %v, min version %x", len(tc.Certificates), tc.InsecureSkipVerify, tc.MinVersion)
			}
			if (c.cfg.CAFile != "") != (tc.RootCAs != nil) {
				t.Errorf("RootCAs set %v, want %v", tc.RootCAs != nil, c.cfg.CAFile != "")
			}
		})
	}
}

// TestKafkaTLS runs record against an in-process broker that only speaks
// TLS, trusting it through kafka.tls.ca_file.
func TestKafkaTLS(t *testing.T) {
	p := newTestPKI(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := command(ctx, []string{
		"SESSIONTRACE_KAFKA_TLS_ENABLED=true",
		"SESSIONTRACE_KAFKA_TLS_CA_FILE=" + p.caFile,
	}, "record", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--topic", "t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("record over TLS: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "recorded 0 records") {
		t.Errorf("unexpected output: %s", out)
	}
}
