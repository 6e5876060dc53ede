package keyvalue

import (
	"slices"
	"testing"
)

func TestStoreKeyIsValidAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, k := range []string{"counter", "a.b", "a/b=c", "user:1", "a b", "*", ">", ".lead", "trail.", "a..b", "ünï", "=x",
		"=" + "eA", "PXg", "k\x00"} {
		sk, err := StoreKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if !plainKey.MatchString(sk) {
			t.Errorf("StoreKey(%q) = %q is not a valid KV key", k, sk)
		}
		if prev, dup := seen[sk]; dup {
			t.Errorf("StoreKey(%q) = StoreKey(%q) = %q", k, prev, sk)
		}
		seen[sk] = k
	}
	if k, _ := StoreKey("counter"); k != "counter" {
		t.Errorf("plain keys are kept: %q", k)
	}
	if _, err := StoreKey(""); err == nil {
		t.Error("empty key accepted")
	}
}

func TestListRange(t *testing.T) {
	l := []string{"a", "b", "c", "d"}
	for _, c := range []struct {
		start, stop int32
		want        []string
	}{
		{0, 0, []string{"a"}}, {0, 3, l}, {0, 100, l}, {1, 2, []string{"b", "c"}},
		{-2, -1, []string{"c", "d"}}, {-100, 1, []string{"a", "b"}}, {3, 1, []string{}},
		{4, 10, []string{}}, {0, -5, []string{}}, {-1 << 31, 1<<31 - 1, l},
	} {
		if got := listRange(l, c.start, c.stop); !slices.Equal(got, c.want) {
			t.Errorf("listRange(%d, %d) = %q, want %q", c.start, c.stop, got, c.want)
		}
	}
	if got := listRange(nil, 0, -1); got == nil || len(got) != 0 {
		t.Errorf("empty list: %#v", got)
	}
}
