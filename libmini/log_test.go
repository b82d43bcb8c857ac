package libmini

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoggerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "minicni.log")
	for i := range 2 {
		log, closeLog := Logger("minibridge", "ADD", path, &CmdArgs{ContainerID: "c1", IfName: "eth0", Netns: "/run/netns/p1"})
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
	for _, want := range []string{"plugin=minibridge", "cmd=ADD", "containerID=c1", "ifname=eth0", "netns=/run/netns/p1", "msg=attached"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %q lacks %q", lines[0], want)
		}
	}
	// A DEL without a netns says so, so a log shows which DEL that was.
	empty := filepath.Join(t.TempDir(), "del.log")
	log, closeLog := Logger("minibridge", "DEL", empty, &CmdArgs{ContainerID: "c1", IfName: "eth0"})
	log.Info("detached")
	closeLog()
	if data, _ := os.ReadFile(empty); !strings.Contains(string(data), `netns=""`) {
		t.Errorf("DEL log line %q lacks netns=\"\"", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", fi.Mode().Perm())
	}
}
