// Command krew-manifest fills the krew manifest template (plugins/at.yaml)
// in for a release: {{ .TagName }} becomes the tag, and each
// {{ addURIAndSha "<url>" .TagName }} the archive's uri and sha256, looked up
// by file name in a sha256sum-style checksums file. It implements the two
// template functions of krew-release-bot, which cannot run here (it
// downloads each archive to hash it), so the template serves both.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

func main() {
	tmplPath := flag.String("template", "plugins/at.yaml", "the krew manifest template")
	tag := flag.String("tag", "", "the release tag, e.g. v0.2.0")
	sumsPath := flag.String("checksums", "dist/checksums.txt", "sha256sum output for the release's archives")
	flag.Parse()
	if err := run(os.Stdout, *tmplPath, *tag, *sumsPath); err != nil {
		fmt.Fprintln(os.Stderr, "krew-manifest:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, tmplPath, tag, sumsPath string) error {
	if tag == "" {
		return fmt.Errorf("--tag is required")
	}
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		return err
	}
	sumsFile, err := os.Open(sumsPath)
	if err != nil {
		return err
	}
	defer func() { _ = sumsFile.Close() }()
	sums, err := readChecksums(sumsFile)
	if err != nil {
		return fmt.Errorf("%s: %w", sumsPath, err)
	}
	out, err := Render(string(tmpl), tag, sums)
	if err != nil {
		return fmt.Errorf("%s: %w", tmplPath, err)
	}
	_, err = io.WriteString(w, out)
	return err
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// readChecksums reads "<sha256>  <file>" lines, as sha256sum writes them.
func readChecksums(r io.Reader) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || !sha256Hex.MatchString(fields[0]) {
			return nil, fmt.Errorf("line %d: want \"<sha256> <file>\", got %q", n, sc.Text())
		}
		sums[path.Base(strings.TrimPrefix(fields[1], "*"))] = fields[0]
	}
	return sums, sc.Err()
}

// Render fills the template in. It fails when an archive has no checksum
// and when the result is not YAML, so a release never ships a manifest that
// krew would reject.
func Render(tmpl, tag string, sums map[string]string) (string, error) {
	funcs := template.FuncMap{
		"addURIAndSha": func(url, tag string) (string, error) {
			url = strings.ReplaceAll(url, "{{ .TagName }}", tag)
			sum, ok := sums[path.Base(url)]
			if !ok {
				return "", fmt.Errorf("no checksum for %s", path.Base(url))
			}
			// Indented as the template's platform entries are; quoted, as a
			// digest of digits only (or digits, one e and digits) would read
			// as a YAML number.
			return fmt.Sprintf("uri: %s\n    sha256: %q", url, sum), nil
		},
	}
	t, err := template.New("manifest").Funcs(funcs).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, struct{ TagName string }{tag}); err != nil {
		return "", err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out.Bytes(), &doc); err != nil {
		return "", fmt.Errorf("the rendered manifest is not YAML: %w", err)
	}
	return out.String(), nil
}
