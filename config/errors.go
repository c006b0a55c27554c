package config

import (
	"fmt"
	"strings"
)

// Error is a config problem at a position: file:line:column: key: message.
// An error that cannot point at a line (a whole-file problem, a missing
// output, an -E flag) starts with "config: " so the user still sees which
// part of the program complains.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line <= 0 {
		b.WriteString("config: ")
	}
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// KeyError is what a Config's Validate returns for a bad value: the dotted
// key relative to the section being validated. Raw.Locate adds the position.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Errorf builds a KeyError for key.
func Errorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

func splitKey(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}
