package libmini

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestEncodeVersions: the VERSION answer is byte for byte what the CNI
// library's PluginInfo.Encode writes for the same versions.
func TestEncodeVersions(t *testing.T) {
	var got, want bytes.Buffer
	if err := encodeVersions(&got); err != nil {
		t.Fatal(err)
	}
	if err := Versions.Encode(&want); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("encodeVersions wrote\n%q\nthe CNI library writes\n%q", got.String(), want.String())
	}
	if err := encodeVersions(failingWriter{}); err == nil {
		t.Error("a failed write is not reported")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestAbout(t *testing.T) {
	got := About("miniipam")
	if !strings.HasPrefix(got, "miniipam "+Version+" (minicni)") || !strings.Contains(got, "0.1.0-1.1.0") {
		t.Errorf("About = %q", got)
	}
}
