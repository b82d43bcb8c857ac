//go:build crashpoints

package crashpoint

import (
	"os"
	"time"
)

// Hit pauses forever when point is the one named by Env, after announcing it
// on stderr.
func Hit(point string) {
	if os.Getenv(Env) != point {
		return
	}
	_, _ = os.Stderr.WriteString(Announce + point + "\n")
	for {
		time.Sleep(time.Hour)
	}
}

// NoTmpfile reports whether NoTmpfileEnv is 1: miniipam then writes every
// reservation through a named temp file, as where O_TMPFILE is refused, so
// that a crash test can stop it at each step of that path too.
func NoTmpfile() bool { return os.Getenv(NoTmpfileEnv) == "1" }
