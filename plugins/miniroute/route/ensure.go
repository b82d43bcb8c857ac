package route

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/minicni/minicni/libmini"
	"github.com/minicni/minicni/plugins/miniroute/rules"
)

// Backend reads and writes one family's iptables ruleset in the network
// namespace of the calling thread. backend.Exec is the real one; unit tests
// use a fake.
type Backend interface {
	// Save returns the ruleset in iptables-save format.
	Save(ctx context.Context) ([]byte, error)
	// Restore applies rules in iptables-restore format without flushing the
	// tables it names, in one transaction. Empty rules only check that the
	// restore command can be run.
	Restore(ctx context.Context, rules []byte) error
	// Lock serializes miniroute's writers of this ruleset (across processes)
	// until unlock is called.
	Lock(ctx context.Context) (unlock func(), err error)
}

// load reads and parses one family's ruleset.
func load(ctx context.Context, b Backend) (rules.Ruleset, error) {
	data, err := b.Save(ctx)
	if err != nil {
		return nil, err
	}
	return rules.Parse(data)
}

// Ensure brings s's rules into place and reports whether it changed
// anything. The fast path is one iptables-save when everything is already
// there. Otherwise it takes the namespace's lock, reads again (a concurrent
// ADD may have done the work) and writes everything missing with one
// iptables-restore: a chain's new content replaces the old atomically, and
// since writers are serialized, two ADDs never both insert the same jump.
// A final read verifies the result.
func Ensure(ctx context.Context, b Backend, s rules.Spec) (changed bool, retErr error) {
	fail := func(what string, err error) *types.Error {
		code := libmini.CodeFirewall
		if errors.Is(err, context.DeadlineExceeded) {
			code = libmini.CodeTryAgainLater
		}
		return libmini.Errorf(code, "%s rules: %s: %v", s.Family, what, err)
	}
	rs, err := load(ctx, b)
	if err != nil {
		return false, fail("cannot read the ruleset", err)
	}
	if restore, _ := rules.Plan(rs, s); restore == nil {
		return false, nil
	}
	unlock, err := b.Lock(ctx)
	if err != nil {
		return false, fail("cannot serialize with other miniroute processes", err)
	}
	defer unlock()
	if rs, err = load(ctx, b); err != nil {
		return false, fail("cannot read the ruleset", err)
	}
	restore, _ := rules.Plan(rs, s)
	if restore == nil {
		return false, nil
	}
	if err := b.Restore(ctx, restore); err != nil {
		e := fail("cannot apply rules", err)
		e.Details = "iptables-restore input:\n" + string(restore)
		return false, e
	}
	if rs, err = load(ctx, b); err != nil {
		return true, fail("cannot read the ruleset back", err)
	}
	if _, problems := rules.Plan(rs, s); len(problems) > 0 {
		return true, fail("rules not in place after iptables-restore", errors.New(strings.Join(problems, "; ")))
	}
	return true, nil
}

// CheckRules reports, as CNI error CodeCheckFailed, every rule of s that is
// missing, duplicated or out of order.
func CheckRules(ctx context.Context, b Backend, s rules.Spec) error {
	if s.Empty() {
		return nil
	}
	rs, err := load(ctx, b)
	if err != nil {
		return libmini.Errorf(libmini.CodeFirewall, "%s rules: cannot read the ruleset: %v", s.Family, err)
	}
	if _, problems := rules.Plan(rs, s); len(problems) > 0 {
		return libmini.Errorf(libmini.CodeCheckFailed, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// Cleanup removes minicni's chains (MINICNI-FORWARD, MINICNI-POSTROUTING)
// from b's family and every rule that jumps to them, and nothing else, in
// one iptables-restore. It is the installer's uninstall step; it is
// idempotent and also removes rules miniroute would otherwise keep (an old
// clusterCIDR's, say). The stamps saying the rules were verified are the
// caller's to forget (stamps.Forget).
func Cleanup(ctx context.Context, b Backend) error {
	unlock, err := b.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rs, err := load(ctx, b)
	if err != nil {
		return err
	}
	restore := rules.Teardown(rs)
	if restore == nil {
		return nil
	}
	if err := b.Restore(ctx, restore); err != nil {
		return fmt.Errorf("remove minicni's chains: %w", err)
	}
	return nil
}
