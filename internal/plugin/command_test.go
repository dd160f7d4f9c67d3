package plugin

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestJoinCommand(t *testing.T) {
	for _, c := range []struct {
		name  string
		words []string
		want  string
		err   string
	}{
		{"one word is a script, as is", []string{"pg_dump db | gzip > /b/db.gz && echo done"}, "pg_dump db | gzip > /b/db.gz && echo done", ""},
		{"plain words stay bare", []string{"echo", "hi"}, "echo hi", ""},
		{"safe punctuation stays bare", []string{"./migrate", "--to=v42", "-n", "a.b_c/d:e,f+g@h%i"}, "./migrate --to=v42 -n a.b_c/d:e,f+g@h%i", ""},
		{"spaces are quoted", []string{"./migrate", "--to", "v2 beta"}, "./migrate --to 'v2 beta'", ""},
		{"shell syntax in a word is quoted", []string{"echo", "a;b", "$HOME", "*", "`x`", "&&"}, `echo 'a;b' '$HOME' '*' '` + "`x`" + `' '&&'`, ""},
		{"single quotes", []string{"echo", "it's"}, `echo 'it'\''s'`, ""},
		{"empty word", []string{"printf", "%s|", ""}, `printf '%s|' ''`, ""},
		{"unicode is quoted", []string{"echo", "grüße"}, "echo 'grüße'", ""},
		{"no words", nil, "", "no command"},
		{"blank script", []string{"  "}, "", "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := JoinCommand(c.words)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("JoinCommand(%q) = %q, %v; want %q", c.words, got, err, c.want)
			}
		})
	}
}

// TestJoinCommandRoundTrip runs the joined command through a real sh and
// checks that it receives exactly the words given.
func TestJoinCommandRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("the round trip needs sh, which every At's command runs under: %v", err)
	}
	words := []string{"printf", `%s\n`, "plain", "two words", "it's", "$HOME", "a;b&&c", "*", "", `back\slash`, "new\nline", "tab\there"}
	command, err := JoinCommand(words)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sh, "-c", command).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", command, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := strings.Split(strings.Join(words[2:], "\n"), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sh -c %q printed %q, want %q", command, got, want)
	}
}
