package crashpoint

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"time"
)

// Await waits until the crash-test binary cmd, started with its stderr
// piped to stderr, announces that it paused at point. When it ends first,
// or does not get there within timeout (then it is killed), Await reaps it
// and returns an error saying which. On success the caller kills it.
func Await(cmd *exec.Cmd, stderr io.Reader, point string, timeout time.Duration) error {
	paused := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if sc.Text() == Announce+point {
				paused <- true
				return
			}
		}
		paused <- false
	}()
	select {
	case ok := <-paused:
		if !ok {
			_ = cmd.Wait() // its exit status says less than where it ended
			return errors.New("it ended without reaching crash point " + point)
		}
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed by us
		return errors.New("it did not reach crash point " + point + " within " + timeout.String())
	}
}
