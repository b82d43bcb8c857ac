package libmini

import (
	"time"
)

// Duration is a config value written as a Go duration string ("30s",
// "1m30s", "500ms"). A JSON number or another type is CNI error 6 naming
// the key, as for every key of the wrong JSON type; ParseDuration
// validates the text.
type Duration string

// MaxLimit is the longest any wait or timeout setting may be: the kubelet
// gives a whole pod sandbox about two minutes, so a longer wait inside one
// plugin could never end in that plugin's own error.
const MaxLimit = 2 * time.Minute

// ParseDuration returns the setting field: def when s is empty, else s
// parsed as a Go duration, which must be more than 0 and at most max. An
// invalid value is CNI error 7 naming field.
func ParseDuration(field string, s Duration, def, max time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(string(s))
	if err != nil {
		return 0, ConfigErrorf("invalid %s %q: not a duration such as \"30s\" or \"500ms\"", field, string(s))
	}
	if d <= 0 || d > max {
		return 0, ConfigErrorf("invalid %s %q: must be more than 0 and at most %s", field, string(s), max)
	}
	return d, nil
}
