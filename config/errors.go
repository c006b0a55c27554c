package config

import (
	"errors"
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

// Prefix moves the KeyErrors of a sub-section's Validate under key (an
// error without a key is put at key itself); nil stays nil.
func Prefix(key string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Prefix(key, e))
		}
		return errors.Join(out...)
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		return &KeyError{Key: key + "." + ke.Key, Err: ke.Err}
	}
	return Errorf(key, "%v", err)
}

func splitKey(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}
