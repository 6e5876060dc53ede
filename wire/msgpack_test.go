package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// Every size class: the size functions agree with what the writer writes,
// and the reader reads back each value and reports its type.
func TestWriterSizesAndReaderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("s", n)
		b := bytes.Repeat([]byte{7}, n)
		w := NewWriter(0)
		w.Str(s)
		if got := len(w.Bytes()); got != StrSize(n) {
			t.Fatalf("str of %d: wrote %d bytes, StrSize says %d", n, got, StrSize(n))
		}
		w = NewWriter(0)
		w.Bin(b)
		if got := len(w.Bytes()); got != BinSize(b) {
			t.Fatalf("bin of %d: wrote %d bytes, BinSize says %d", n, got, BinSize(b))
		}
		w = NewWriter(0)
		w.MapHeader(n)
		if got := len(w.Bytes()); got != ContainerSize(n) {
			t.Fatalf("map of %d: wrote %d bytes, ContainerSize says %d", n, got, ContainerSize(n))
		}

		// One message of each kind, then read back in order.
		w = NewWriter(0)
		w.ArrayHeader(6)
		w.Str(s)
		w.Bin(b)
		w.Uint(uint64(n))
		w.Bool(n%2 == 0)
		w.Nil()
		w.MapHeader(0)
		r := NewReader(w.Bytes())
		steps := []struct {
			want Type
			read func() error
		}{
			{Array, func() error { m, err := r.ArrayLen(); return check(err, m == 6) }},
			{Str, func() error { v, err := r.Str(); return check(err, v == s) }},
			{Bin, func() error { v, err := r.Bytes(); return check(err, bytes.Equal(v, b)) }},
			{Int, func() error { v, err := r.Uint(); return check(err, v == uint64(n)) }},
			{Bool, func() error { v, err := r.Bool(); return check(err, v == (n%2 == 0)) }},
			{Nil, func() error { return r.Skip() }},
			{Map, func() error { m, err := r.MapLen(); return check(err, m == 0) }},
		}
		for i, step := range steps {
			if typ, err := r.Next(); err != nil || typ != step.want {
				t.Fatalf("n=%d step %d: Next = %v, %v; want %v", n, i, typ, err, step.want)
			}
			if err := step.read(); err != nil {
				t.Fatalf("n=%d step %d: %v", n, i, err)
			}
		}
		if err := r.End(); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if _, err := r.Next(); !errors.Is(err, errShort) {
			t.Fatalf("n=%d: Next at the end = %v, want errShort", n, err)
		}
	}
}

func check(err error, ok bool) error {
	if err == nil && !ok {
		return errors.New("read back a different value")
	}
	return err
}

// Uint's compact forms and Uint16's fixed one, byte for byte, read back.
func TestWriterIntegerForms(t *testing.T) {
	cases := []struct {
		v     uint64
		fixed bool // written with Uint16
		want  []byte
	}{
		{0x7f, false, []byte{0x7f}},
		{0x80, false, []byte{0xcc, 0x80}},
		{0x100, false, []byte{0xcd, 0x01, 0x00}},
		{0x10000, false, []byte{0xce, 0, 1, 0, 0}},
		{1 << 32, false, []byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}},
		{200, true, []byte{0xcd, 0, 200}},
	}
	for _, c := range cases {
		w := NewWriter(0)
		if c.fixed {
			w.Uint16(uint16(c.v))
		} else {
			w.Uint(c.v)
			if UintSize(c.v) != len(c.want) {
				t.Errorf("UintSize(%d) = %d, want %d", c.v, UintSize(c.v), len(c.want))
			}
		}
		if !bytes.Equal(w.Bytes(), c.want) {
			t.Errorf("%d: wrote % x, want % x", c.v, w.Bytes(), c.want)
		}
		if v, err := NewReader(w.Bytes()).Uint(); err != nil || v != c.v {
			t.Errorf("% x: read %d, %v; want %d", c.want, v, err, c.v)
		}
	}
}

// Skip refuses nesting past MaxDepth, counting the maps Fields is inside.
func TestSkipDepthCountsEnclosingFields(t *testing.T) {
	nested := func(depth int) []byte {
		w := NewWriter(0)
		w.MapHeader(1)
		w.Str("x")
		for i := 0; i < depth; i++ {
			w.ArrayHeader(1)
		}
		w.Nil()
		return w.Bytes()
	}
	for _, c := range []struct {
		depth int
		ok    bool
	}{{MaxDepth - 1, true}, {MaxDepth, false}} {
		r := NewReader(nested(c.depth))
		err := r.Fields(func([]byte) error { return r.Skip() })
		if (err == nil) != c.ok {
			t.Errorf("%d arrays deep: %v, want ok=%v", c.depth, err, c.ok)
		}
	}
}

// Int writes the narrowest form, and Reader.Int reads it back.
func TestWriterIntIsCompact(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x00}}, {127, []byte{0x7f}}, {128, []byte{0xcc, 0x80}},
		{-1, []byte{0xff}}, {-32, []byte{0xe0}}, {-33, []byte{0xd0, 0xdf}},
		{-128, []byte{0xd0, 0x80}}, {-129, []byte{0xd1, 0xff, 0x7f}},
		{-32769, []byte{0xd2, 0xff, 0xff, 0x7f, 0xff}},
		{math.MinInt64, []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}},
	} {
		w := NewWriter(0)
		w.Int(tc.v)
		if !bytes.Equal(w.Bytes(), tc.want) {
			t.Errorf("Int(%d) = % x, want % x", tc.v, w.Bytes(), tc.want)
		}
		if got, err := NewReader(w.Bytes()).Int(); err != nil || got != tc.v {
			t.Errorf("read back %d: %d, %v", tc.v, got, err)
		}
	}
}

// ByteArray reads every form a peer writes a byte string in (bin, str, an
// array of bytes, nil) and refuses the rest; StrBytes writes a str of the
// bytes, empty for nil.
func TestByteArrayForms(t *testing.T) {
	str := NewWriter(0)
	str.StrBytes([]byte{0xff, 0})
	empty := NewWriter(0)
	empty.StrBytes(nil)
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		bad  bool
	}{
		{name: "bin", in: []byte{0xc4, 2, 0xff, 0}, want: []byte{0xff, 0}},
		{name: "str, not UTF-8", in: str.Bytes(), want: []byte{0xff, 0}},
		{name: "empty str for nil", in: empty.Bytes(), want: []byte{}},
		{name: "array of bytes", in: []byte{0x93, 1, 0xcc, 0xff, 0xd0, 5}, want: []byte{1, 0xff, 5}},
		{name: "empty array", in: []byte{0x90}, want: []byte{}},
		{name: "nil", in: []byte{0xc0}},
		{name: "array element above 255", in: []byte{0x91, 0xcd, 1, 0}, bad: true},
		{name: "negative array element", in: []byte{0x91, 0xff}, bad: true},
		{name: "array of strings", in: []byte{0x91, 0xa1, 'x'}, bad: true},
		{name: "array longer than the input", in: []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1}, bad: true},
		{name: "int", in: []byte{5}, bad: true},
	} {
		got, err := NewReader(tc.in).ByteArray()
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted as % x", tc.name, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) || (tc.want != nil) != (got != nil) {
			t.Errorf("%s: got % x (nil %v), %v; want % x", tc.name, got, got == nil, err, tc.want)
		}
	}
}
