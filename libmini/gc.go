package libmini

import (
	"encoding/json"

	"github.com/containernetworking/cni/pkg/types"
)

// GCAttachments returns the attachments a GC request names as still live:
// cni.dev/valid-attachments, or, when that key is absent, the older
// cni.dev/attachments (libcni sends both, cni issue 1101). ok says whether
// either key was sent: a GC without a list must not be read as "nothing is
// live", while an explicit null or [] means exactly that. A list that does
// not decode is CNI error 6 naming the key.
func (c *NetConf) GCAttachments() (list []types.GCAttachment, ok bool, err error) {
	for _, k := range []struct {
		field string
		raw   json.RawMessage
	}{{"cni.dev/valid-attachments", c.RawValidAttachments}, {"cni.dev/attachments", c.RawAttachments}} {
		if k.raw == nil {
			continue
		}
		if err := json.Unmarshal(k.raw, &list); err != nil {
			return nil, false, types.NewError(CodeDecode, "failed to decode "+k.field, err.Error())
		}
		return list, true, nil
	}
	return nil, false, nil
}
