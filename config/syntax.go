package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports syntax errors as "yaml: line N: problem".
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// maxPrefixParses bounds the search for the line at fault in a huge file;
// past it the parser's own line is reported.
const maxPrefixParses = 4000

// syntaxError positions a YAML syntax error where the problem is. yaml.v3
// names the line of its context mark when it has one: the start of the
// block it was parsing ("while parsing a block collection"), which for a
// mis-indented line is often the line of the enclosing key, several lines
// above the mistake. The line at fault is the first line that no valid
// document can contain: the one after the longest run of leading lines
// that still parses (a prefix of a valid document that ends between two
// entries parses). The column is found on that line from the kind of
// problem (a tab, an unclosed quote or bracket), else it is the line's
// first character. The parser's line is kept in the message when it
// differs.
func syntaxError(file string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	parserLine := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		parserLine, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	line := faultyLine(lines)
	if line == 0 {
		return &Error{File: file, Line: parserLine, Msg: "invalid YAML: " + msg}
	}
	col, hint := faultyColumn(lines[line-1], msg)
	if parserLine != 0 && parserLine != line {
		hint += "; the parser reported line " + strconv.Itoa(parserLine)
	}
	if hint != "" {
		msg += " (" + strings.TrimPrefix(hint, "; ") + ")"
	}
	return &Error{File: file, Line: line, Column: col, Msg: "invalid YAML: " + msg}
}

// faultyLine returns the 1-based line after the longest prefix of lines
// that parses; 0 when the search gives up.
func faultyLine(lines []string) int {
	for k, tries := len(lines)-1, 0; k >= 0; k, tries = k-1, tries+1 {
		if tries == maxPrefixParses {
			return 0
		}
		if k == 0 || parses(strings.Join(lines[:k], "")) {
			return k + 1
		}
	}
	return 0
}

// parses reports whether text is a valid YAML stream.
func parses(text string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	dec := yaml.NewDecoder(strings.NewReader(text))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// faultyColumn returns the 1-based column of the problem on line and a
// hint for the common mistakes.
func faultyColumn(line, msg string) (int, string) {
	text := strings.TrimRight(line, "\r\n")
	first := len(text) - len(strings.TrimLeft(text, " "))
	switch {
	case strings.Contains(msg, "tab") || (strings.Contains(msg, "cannot start any token") && strings.Contains(text, "\t")):
		if i := strings.IndexByte(text, '\t'); i >= 0 {
			return i + 1, "YAML indents with spaces; a tab is not allowed here"
		}
	case strings.Contains(msg, "unexpected end of stream") || strings.Contains(msg, "quoted scalar"):
		if i := unclosedQuote(text); i >= 0 {
			return i + 1, "this quote is never closed"
		}
	case strings.Contains(msg, "expected ',' or ']'") || strings.Contains(msg, "expected ',' or '}'"):
		if i := unclosedBracket(text); i >= 0 {
			return i + 1, "this bracket is never closed"
		}
	case strings.Contains(msg, "could not find expected ':'"):
		return first + 1, "a key needs a ':' after it"
	case strings.Contains(msg, "expected '-' indicator") || strings.Contains(msg, "expected key") ||
		strings.Contains(msg, "mapping values are not allowed"):
		return first + 1, "check the indentation of this line against the lines above"
	}
	return first + 1, ""
}

// unclosedQuote returns the index of the quote on text that is left
// open, ignoring quotes inside a comment or a plain value, or -1.
func unclosedQuote(text string) int {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '#' && (i == 0 || text[i-1] == ' ') {
			return -1
		}
		if c != '"' && c != '\'' {
			continue
		}
		// A quote opens a scalar only where a value starts.
		if i > 0 && !bytes.ContainsRune([]byte(" [{,:-"), rune(text[i-1])) {
			continue
		}
		j := closingQuote(text, i)
		if j < 0 {
			return i
		}
		i = j
	}
	return -1
}

func closingQuote(text string, open int) int {
	q := text[open]
	for j := open + 1; j < len(text); j++ {
		switch {
		case q == '"' && text[j] == '\\':
			j++
		case q == '\'' && text[j] == '\'' && j+1 < len(text) && text[j+1] == '\'':
			j++
		case text[j] == q:
			return j
		}
	}
	return -1
}

// unclosedBracket returns the index of the last [ or { of text without its
// closing bracket, or -1.
func unclosedBracket(text string) int {
	var open []int
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '"', '\'':
			if j := closingQuote(text, i); j > 0 {
				i = j
			}
		case '[', '{':
			open = append(open, i)
		case ']', '}':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		case '#':
			if i == 0 || text[i-1] == ' ' {
				i = len(text)
			}
		}
	}
	if len(open) == 0 {
		return -1
	}
	return open[len(open)-1]
}
