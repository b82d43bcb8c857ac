package libmini

import (
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
)

func TestGCAttachments(t *testing.T) {
	const head = `{"cniVersion":"1.1.0","name":"n"`
	tests := []struct {
		name  string
		extra string
		want  []types.GCAttachment
		ok    bool
		code  uint
	}{
		{"absent", ``, nil, false, 0},
		{"valid-attachments", `,"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]`,
			[]types.GCAttachment{{ContainerID: "a", IfName: "eth0"}}, true, 0},
		{"older key only", `,"cni.dev/attachments":[{"containerID":"b","ifname":"net1"}]`,
			[]types.GCAttachment{{ContainerID: "b", IfName: "net1"}}, true, 0},
		{"both keys: the new one wins", `,"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"b","ifname":"eth0"}]`,
			[]types.GCAttachment{{ContainerID: "a", IfName: "eth0"}}, true, 0},
		{"empty list: nothing is live", `,"cni.dev/valid-attachments":[]`, []types.GCAttachment{}, true, 0},
		{"null: nothing is live", `,"cni.dev/valid-attachments":null`, nil, true, 0},
		{"not a list", `,"cni.dev/valid-attachments":{"a":1}`, nil, false, CodeDecode},
		{"older key not a list", `,"cni.dev/attachments":"x"`, nil, false, CodeDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConf
			if err := Decode([]byte(head+tt.extra+`}`), &c); err != nil {
				t.Fatal(err)
			}
			list, ok, err := c.GCAttachments()
			if got := code(t, err); got != tt.code {
				t.Fatalf("code %d, want %d (err %v)", got, tt.code, err)
			}
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
			if d := cmp.Diff(tt.want, list); d != "" {
				t.Errorf("list (-want +got):\n%s", d)
			}
		})
	}
}
