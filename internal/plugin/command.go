package plugin

import (
	"errors"
	"strings"
)

// JoinCommand turns the words after `--` into spec.command, which the pod
// runs as `sh -c <command>`.
//
// One word is a shell script, taken as is, so that
// `-- 'pg_dump db | gzip > /backup/db.gz'` keeps its pipe. Several words are
// an argument vector, as with `kubectl create job -- CMD ARGS`: each word is
// quoted where the shell would otherwise split or expand it, so that
// `-- ./migrate --to 'v2 beta'` runs exactly those three arguments. Words made
// only of characters the shell leaves alone stay bare, so the stored command
// reads as typed.
func JoinCommand(words []string) (string, error) {
	switch len(words) {
	case 0:
		return "", errors.New("no command: put it after --, e.g. kubectl at create NAME --in 5m -- echo hello")
	case 1:
		if strings.TrimSpace(words[0]) == "" {
			return "", errors.New("the command after -- is empty")
		}
		return words[0], nil
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " "), nil
}

// shellQuote returns w as one POSIX shell word: bare when it holds only
// characters without meaning to sh, else in single quotes (inside which
// nothing is special; a single quote itself is written '\”).
func shellQuote(w string) string {
	if w == "" {
		return "''"
	}
	if strings.IndexFunc(w, func(r rune) bool { return !isShellSafe(r) }) < 0 {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

func isShellSafe(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("-_./:=,+@%", r)
}
