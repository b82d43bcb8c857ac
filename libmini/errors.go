package libmini

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// CNI error codes. The spec's codes are re-exported so callers need only this
// file; minicni's own codes start at 100 and are defined nowhere else.
const (
	CodeIncompatibleVersion uint = types.ErrIncompatibleCNIVersion // 1
	CodeInvalidEnv          uint = types.ErrInvalidEnvironmentVariables
	CodeIOFailure           uint = types.ErrIOFailure       // 5
	CodeDecode              uint = types.ErrDecodingFailure // 6
	CodeInvalidConfig       uint = types.ErrInvalidNetworkConfig
	CodeTryAgainLater       uint = types.ErrTryAgainLater       // 11
	CodeNotAvailable        uint = types.ErrPluginNotAvailable  // 50
	CodeLimitedAvailable    uint = types.ErrLimitedConnectivity // 51

	// CodePoolExhausted: every address of a range set is reserved.
	CodePoolExhausted uint = 100
	// CodeAddressTaken: a statically requested address belongs to another owner.
	CodeAddressTaken uint = 101
	// CodeStore: the IPAM's on-disk store could not be read or written.
	CodeStore uint = 102
	// CodeGatewayConflict: the bridge holds a different gateway address
	// (the node's subnet changed) and forceAddress is off.
	CodeGatewayConflict uint = 103
	// CodeLink: creating, configuring or finding a link, address or route failed.
	CodeLink uint = 104
	// CodeIPAM: the delegated IPAM plugin failed without a CNI error of its own,
	// or returned no usable address.
	CodeIPAM uint = 105
	// CodeFirewall: iptables could not be used or a rule could not be ensured.
	CodeFirewall uint = 106
	// CodeCheckFailed: CHECK found the host state differs from the expected one.
	CodeCheckFailed uint = 107
	// CodeNoPrevResult: a chained plugin ran without the prevResult it needs.
	CodeNoPrevResult uint = 108
)

// Errorf builds a CNI error with a formatted message and no details.
func Errorf(code uint, format string, args ...any) *types.Error {
	return types.NewError(code, fmt.Sprintf(format, args...), "")
}

// ConfigErrorf is a CNI error 7 (invalid network config).
func ConfigErrorf(format string, args ...any) *types.Error {
	return Errorf(CodeInvalidConfig, format, args...)
}

// Wrap turns err into a CNI error with code and msg, keeping err's text as the
// details. A *types.Error passes through unchanged, so the code chosen where
// the failure was understood wins.
func Wrap(err error, code uint, msg string) error {
	if err == nil {
		return nil
	}
	if e, ok := AsCNIError(err); ok {
		return e
	}
	return types.NewError(code, msg, err.Error())
}

// AsCNIError reports whether err is, or wraps, a *types.Error.
func AsCNIError(err error) (*types.Error, bool) {
	var e *types.Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
