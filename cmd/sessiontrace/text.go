package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// safeText returns producer text (a player ID, a reason, an attribute) in a
// form that is safe to print for a person: unchanged when it is plain
// printable text, otherwise quoted Go-style, so that control characters,
// terminal escape sequences, newlines, invalid UTF-8 and invisible format
// characters appear as escapes (\x1b, \n, \xff, \u202e) instead of acting on
// the terminal or forging a line. Text with a space, a quote or a backslash
// is quoted too, so a value cannot pass for the next key=value pair.
func safeText(s string) string {
	if plainText(s) {
		return s
	}
	return strconv.Quote(s)
}

func plainText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '"' || c == '\\' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !strconv.IsPrint(r) {
			return false
		}
		i += size
	}
	return true
}

// plural returns "1 match" or "n matches" for a count given as text; text
// that is not a number is printed safely with the plural noun.
func plural(n, one, many string) string {
	if n == "1" {
		return n + " " + one
	}
	if _, err := strconv.ParseInt(n, 10, 64); err != nil {
		return strings.TrimSpace(safeText(n) + " " + many)
	}
	return n + " " + many
}

// errorText formats an error message for the terminal: control characters,
// invalid UTF-8 and invisible format characters are escaped as in safeText,
// and the lines after the first (joined errors) are indented, so that text
// from a broker or a producer inside an error cannot pass for a line of its
// own.
func errorText(msg string) string { return escapeText(msg, "\n  ") }

// lineText is errorText on one line: a newline is written as \n.
func lineText(msg string) string { return escapeText(msg, `\n`) }

// escapeText escapes what is not printable in msg, writing newline for
// each line break.
func escapeText(msg, newline string) string {
	var b strings.Builder
	for i := 0; i < len(msg); {
		r, size := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == '\n':
			b.WriteString(newline)
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case r == '\t' || r != utf8.RuneError && strconv.IsPrint(r):
			b.WriteString(msg[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}
