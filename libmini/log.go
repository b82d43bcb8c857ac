package libmini

import (
	"io"
	"log/slog"
	"os"
)

// Logger returns the logger for one plugin command, tagged with plugin, cmd,
// containerID, ifname and netns (empty on the DEL a runtime sends once the
// pod's namespace is gone, as containerd does at RemovePodSandbox). It writes
// to stderr (warnings and errors only: the runtime shows a failed plugin's
// stderr, so it stays terse) or, when logFile is set, appends everything from
// info level to that file. stdout is never used: it carries the result.
// close releases the file.
func Logger(plugin, cmd, logFile string, args *CmdArgs) (log *slog.Logger, close func()) {
	var w io.Writer = os.Stderr
	level := slog.LevelWarn
	close = func() {}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			w, level, close = f, slog.LevelInfo, func() { _ = f.Close() }
		}
	}
	log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("plugin", plugin, "cmd", cmd)
	if args != nil {
		log = log.With("containerID", args.ContainerID, "ifname", args.IfName, "netns", args.Netns)
	}
	return log, close
}
