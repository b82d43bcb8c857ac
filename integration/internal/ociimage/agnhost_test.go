package ociimage

import (
	"slices"
	"testing"
)

func TestParseLdd(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []string
	}{
		{"vdso, libraries, loader", "\tlinux-vdso.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007e)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007d)\n",
			[]string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}},
		{"static", "\tnot a dynamic executable\n", nil},
		{"not found", "\tlibfoo.so.1 => not found\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseLdd([]byte(tc.out)); !slices.Equal(got, tc.want) {
				t.Fatalf("parseLdd = %q, want %q", got, tc.want)
			}
		})
	}
}
