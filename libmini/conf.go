// Package libmini is the small library every minicni plugin shares: the
// plugins' entry point (PluginMain: CNI variables checked, errors printed as
// the spec's object), config decoding and validation, the one parser of
// prefixes and addresses (addr.go, netip), CNI errors, logging, prevResult
// parsing and IPAM delegation. It deliberately imports neither netlink nor
// iptables: code that touches the kernel lives with the plugin that needs it.
package libmini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
)

// NetConf is the part of every minicni plugin's config that libmini
// understands. Plugins embed it in their own NetConf.
type NetConf struct {
	types.PluginConf
	// LogFile, when set, receives the plugin's log lines (appended) instead of stderr.
	LogFile string `json:"logFile,omitempty"`
	// The GC lists, decoded raw (shadowing PluginConf.ValidAttachments) so
	// that an absent list can be told apart from an empty one; read them
	// with GCAttachments.
	RawValidAttachments json.RawMessage `json:"cni.dev/valid-attachments,omitempty"`
	RawAttachments      json.RawMessage `json:"cni.dev/attachments,omitempty"`
	// RawPrev is prevResult as it came, shadowing PluginConf.RawPrevResult:
	// decoding it into a map of interfaces and encoding that again before
	// parsing it cost a chained plugin's ADD more than parsing it once. Read
	// it with PrevResult.
	RawPrev json.RawMessage `json:"prevResult,omitempty"`
}

// Decode unmarshals a plugin's stdin into conf (already holding its defaults)
// and validates the fields every plugin shares. A JSON failure is CNI error 6,
// an invalid value error 7.
func Decode(stdin []byte, conf interface{ Common() *NetConf }) error {
	if err := json.Unmarshal(stdin, conf); err != nil {
		return types.NewError(CodeDecode, "failed to decode network config", err.Error())
	}
	return conf.Common().Validate()
}

// Common returns c itself, so a plugin's NetConf that embeds NetConf satisfies
// the interface Decode takes.
func (c *NetConf) Common() *NetConf { return c }

// Validate checks the fields shared by every plugin: cniVersion, name, type
// and, when present, ipam.type.
func (c *NetConf) Validate() error {
	if err := ValidateVersion(c.CNIVersion); err != nil {
		return err
	}
	if err := ValidateNetworkName(c.Name); err != nil {
		return err
	}
	if c.Type != "" {
		if err := ValidatePluginType("type", c.Type); err != nil {
			return err
		}
	}
	if c.IPAM.Type != "" {
		if err := ValidatePluginType("ipam.type", c.IPAM.Type); err != nil {
			return err
		}
	}
	return nil
}

// ValidateVersion accepts every CNI spec version from 0.1.0 to 1.1.0; an empty
// version means 0.1.0, as in the spec.
func ValidateVersion(v string) error {
	if v == "" || slices.Contains(Versions.SupportedVersions(), v) {
		return nil
	}
	return types.NewError(CodeIncompatibleVersion, fmt.Sprintf("unsupported cniVersion %q", v),
		"supported: "+strings.Join(Versions.SupportedVersions(), ", "))
}

// namePattern is the spec's syntax of a network name and a container ID,
// which validName checks (by hand: a compiled regexp would cost every plugin
// start its package initialisation).
const namePattern = `^[A-Za-z0-9][A-Za-z0-9_.-]*$`

// validName reports whether s matches namePattern.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return s != ""
}

// ValidateNetworkName checks a network name before it becomes part of a path.
func ValidateNetworkName(name string) error {
	if name == "" {
		return ConfigErrorf("missing network name")
	}
	if !validName(name) || len(name) > 253 {
		return ConfigErrorf("invalid network name %q: must match %s (at most 253 bytes)", name, namePattern)
	}
	return nil
}

// ValidatePluginType checks a plugin type (the binary's name), which must not
// reach outside CNI_PATH (CVE-2021-20206).
func ValidatePluginType(field, typ string) error {
	if typ == "" {
		return ConfigErrorf("missing %s", field)
	}
	if !validName(typ) || typ == "." || typ == ".." {
		return ConfigErrorf("invalid %s %q: must be a plain binary name matching %s", field, typ, namePattern)
	}
	return nil
}

// ValidateIfName checks a Linux interface name: 1–15 bytes (IFNAMSIZ), no
// '/', ':', NUL or whitespace, not "." or "..". field names the config key in
// the error (code 7); CNI_IFNAME is ValidateEnvIfName's (code 4).
func ValidateIfName(field, name string) error {
	return ValidateIfNameAs(CodeInvalidConfig, field, name)
}

// ValidateIfNameAs is ValidateIfName with the error's CNI code chosen by the
// caller, for a name that is not a config key (CNI_IFNAME passed in-process:
// CodeInvalidEnv).
func ValidateIfNameAs(code uint, field, name string) error {
	if p := ifNameProblem(name); p != "" {
		if name == "" {
			return Errorf(code, "%s %s", field, p)
		}
		return Errorf(code, "%s %q %s", field, name, p)
	}
	return nil
}

// ValidateMTU accepts 0 (automatic) or 68–65535.
func ValidateMTU(field string, mtu int) error {
	if mtu == 0 || (mtu >= 68 && mtu <= 65535) {
		return nil
	}
	return ConfigErrorf("invalid %s %d: must be 0 (automatic) or 68-65535", field, mtu)
}

// PrevResult returns conf's prevResult as a types/100 result, or nil and no
// error when there is none. The raw prevResult is parsed in the config's
// version, as the CNI library's version.ParsePrevResult does (a result
// without its own cniVersion, possible before 1.0.0, takes the config's), and
// conf is left as it was, so a config may be read any number of times; a conf
// whose PrevResult was parsed already answers from it.
func PrevResult(conf *NetConf) (*current.Result, error) {
	parsed := conf.PrevResult
	if raw := bytes.TrimSpace(conf.RawPrev); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var head struct {
			CNIVersion string `json:"cniVersion"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, types.NewError(CodeDecode, "failed to parse prevResult", err.Error())
		}
		if head.CNIVersion == "" {
			// Give it the config's version, as the library does.
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, types.NewError(CodeDecode, "failed to parse prevResult", err.Error())
			}
			m["cniVersion"] = conf.CNIVersion
			b, err := json.Marshal(m)
			if err != nil {
				return nil, types.NewError(CodeDecode, "failed to parse prevResult", err.Error())
			}
			raw = b
		}
		r, err := create.Create(conf.CNIVersion, raw)
		if err != nil {
			return nil, types.NewError(CodeDecode, "failed to parse prevResult", "could not parse prevResult: "+err.Error())
		}
		parsed = r
	}
	if parsed == nil {
		return nil, nil
	}
	res, err := current.NewResultFromResult(parsed)
	if err != nil {
		return nil, types.NewError(CodeDecode, "failed to convert prevResult", err.Error())
	}
	return res, nil
}
