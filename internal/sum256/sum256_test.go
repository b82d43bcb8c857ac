package sum256

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// TestSum compares Sum with crypto/sha256 on every length around the
// padding's block boundaries and on random inputs up to four blocks.
func TestSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		for range 4 {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			if got, want := Sum(data), sha256.Sum256(data); got != want {
				t.Fatalf("Sum of %d bytes %x: %x, crypto/sha256 %x", n, data, got, want)
			}
		}
	}
	// FIPS 180-4's own example: SHA-256("abc").
	if got := Sum([]byte("abc")); got != [Size]byte{
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	} {
		t.Errorf("Sum(abc) = %x", got)
	}
}
