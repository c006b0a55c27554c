package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestLoadRefusesAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := parseConfig([]byte(b.String()), "bomb.yml", nil, mapEnv(nil))
	want := "bomb.yml:5:45: the config expands to more than 100000 values (check the aliases)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestLoadManyKeys(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "k%d.x: %d\n", i, i)
	}
	root, err := parseConfig([]byte(b.String()), "big.yml", nil, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(root.Keys()); n != 20000 {
		t.Fatalf("%d keys, want 20000", n)
	}
}
