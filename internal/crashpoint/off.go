//go:build !crashpoints

package crashpoint

// Hit does nothing in a normal build.
func Hit(string) {}

// NoTmpfile is false in a normal build: miniipam writes a reservation
// through an O_TMPFILE file wherever the filesystem allows it.
func NoTmpfile() bool { return false }
