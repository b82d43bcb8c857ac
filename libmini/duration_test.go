package libmini

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in   Duration
		want time.Duration
		err  string // substring of msg; empty: valid
	}{
		{"", 7 * time.Second, ""},
		{"1s", time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"2m", 2 * time.Minute, ""},
		{"2m1s", 0, `invalid x.timeout "2m1s": must be more than 0 and at most 2m0s`},
		{"0s", 0, `invalid x.timeout "0s": must be more than 0`},
		{"-1s", 0, `invalid x.timeout "-1s"`},
		{"30", 0, `invalid x.timeout "30": not a duration`},
		{"soon", 0, `invalid x.timeout "soon": not a duration`},
	} {
		got, err := ParseDuration("x.timeout", tt.in, 7*time.Second, MaxLimit)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("%q: got %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		e, ok := AsCNIError(err)
		if !ok || e.Code != CodeInvalidConfig || !strings.Contains(e.Msg, tt.err) {
			t.Errorf("%q: got %v, want code 7 with %q", tt.in, err, tt.err)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var v struct {
		D Duration `json:"d"`
	}
	if err := json.Unmarshal([]byte(`{"d":"5s"}`), &v); err != nil || v.D != "5s" {
		t.Errorf("string: %q, %v", v.D, err)
	}
	if err := json.Unmarshal([]byte(`{"d":5}`), &v); err == nil || !strings.Contains(err.Error(), ".d of type libmini.Duration") {
		t.Errorf("a number: %v, want an error naming the field", err)
	}
}
