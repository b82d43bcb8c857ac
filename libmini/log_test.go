package libmini

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
)

func TestLoggerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "minicni.log")
	for i := range 2 {
		log, closeLog := Logger("minibridge", "ADD", path, &skel.CmdArgs{ContainerID: "c1", IfName: "eth0"})
		log.Info("attached", "n", i)
		closeLog()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("log has %d lines, want 2 (appended): %q", len(lines), data)
	}
	for _, want := range []string{"plugin=minibridge", "cmd=ADD", "containerID=c1", "ifname=eth0", "msg=attached"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %q lacks %q", lines[0], want)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", fi.Mode().Perm())
	}
}
