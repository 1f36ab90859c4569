package schema

import (
	"errors"
	"fmt"
)

// Default limits. They bound the memory one record can pin and the size of the
// span attributes it produces; a realistic event is about 256 bytes.
const (
	DefaultMaxRecordBytes  = 64 << 10
	DefaultMaxAttributes   = 32
	DefaultMaxAttrKeyLen   = 128
	DefaultMaxAttrValueLen = 1024
	DefaultMaxFieldLen     = 256

	// maxRecordBytesCeiling keeps offsets inside a record comfortably within
	// int32 and stops a configuration typo from disabling the bound.
	maxRecordBytesCeiling = 1 << 30
)

// Limits bound what one record may carry. Lengths are in bytes of UTF-8 after
// JSON unescaping.
type Limits struct {
	// MaxRecordBytes bounds the raw record value (default 64 KiB).
	MaxRecordBytes int `mapstructure:"max_record_bytes"`
	// MaxAttributes bounds the members of "attributes" (default 32).
	MaxAttributes int `mapstructure:"max_attributes"`
	// MaxAttrKeyLen bounds each attribute key (default 128).
	MaxAttrKeyLen int `mapstructure:"max_attr_key_len"`
	// MaxAttrValueLen bounds each string attribute value (default 1024).
	MaxAttrValueLen int `mapstructure:"max_attr_value_len"`
	// MaxFieldLen bounds the ids and every other string field (default 256).
	MaxFieldLen int `mapstructure:"max_field_len"`
}

// DefaultLimits returns the limits the published JSON Schema encodes.
func DefaultLimits() Limits {
	return Limits{
		MaxRecordBytes:  DefaultMaxRecordBytes,
		MaxAttributes:   DefaultMaxAttributes,
		MaxAttrKeyLen:   DefaultMaxAttrKeyLen,
		MaxAttrValueLen: DefaultMaxAttrValueLen,
		MaxFieldLen:     DefaultMaxFieldLen,
	}
}

// Validate reports every limit that is not positive, or that exceeds 1 GiB for
// max_record_bytes, as one joined error.
func (l Limits) Validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("schema: %s must be positive, got %d", name, v))
		}
	}
	positive("max_record_bytes", l.MaxRecordBytes)
	positive("max_attributes", l.MaxAttributes)
	positive("max_attr_key_len", l.MaxAttrKeyLen)
	positive("max_attr_value_len", l.MaxAttrValueLen)
	positive("max_field_len", l.MaxFieldLen)
	if l.MaxRecordBytes > maxRecordBytesCeiling {
		errs = append(errs, fmt.Errorf("schema: max_record_bytes must be at most %d, got %d",
			maxRecordBytesCeiling, l.MaxRecordBytes))
	}
	return errors.Join(errs...)
}
