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
