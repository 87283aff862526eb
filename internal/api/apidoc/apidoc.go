// Package apidoc is the step of `make docs` that runs after swag: it writes
// into docs/ what swag's annotations cannot say, so that the document states
// the rules the server really applies.
//
//   - additionalProperties: false on request bodies the API decodes with
//     unknown fields refused (StrictBodies);
//   - the patterns of fields (Patterns), which swag does not read from
//     struct tags;
//   - an example body on every non-2xx response, made by
//     api.ResponseExample from the same code as the real answer (swag has
//     no response examples, so Swagger UI showed the ErrorBody field
//     examples, a validation error, for every error).
//
// It edits the three files swag writes (swagger.json, swagger.yaml and the
// template in docs.go) the way swag writes them, so running it twice changes
// nothing. internal/api/docs_test.go runs swag and Finish and fails when
// docs/ differs.
package apidoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/go-openapi/spec"
	"sigs.k8s.io/yaml"

	"github.com/messaging-server/messaging-server/internal/api"
	"github.com/messaging-server/messaging-server/internal/message"
)

// StrictBodies are the definitions of request bodies whose unknown fields
// the API refuses with 400 unknown_field.
var StrictBodies = []string{"api.CreateMessageRequest", "api.BatchRequest", "api.ReceiptRequest", "api.InboundRequest"}

// Patterns are the patterns of request fields, by definition and property,
// from the rules the server applies.
var Patterns = map[string]map[string]string{
	"api.CreateMessageRequest": {"content": message.ContentPattern, "id": api.IDPattern},
}

// Finish edits the swag output in dir.
func Finish(dir string) error {
	jsonPath := filepath.Join(dir, "swagger.json")
	orig, err := os.ReadFile(jsonPath)
	if err != nil {
		return fmt.Errorf("apidoc: %w", err)
	}
	var doc spec.Swagger
	if err := json.Unmarshal(orig, &doc); err != nil {
		return fmt.Errorf("apidoc: parse %s: %w", jsonPath, err)
	}
	if err := patch(&doc); err != nil {
		return err
	}
	// As swag writes them: JSON indented by four spaces, YAML converted
	// from compact JSON.
	indented, err := json.MarshalIndent(&doc, "", "    ")
	if err != nil {
		return fmt.Errorf("apidoc: %w", err)
	}
	compact, err := json.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("apidoc: %w", err)
	}
	y, err := yaml.JSONToYAML(compact)
	if err != nil {
		return fmt.Errorf("apidoc: yaml: %w", err)
	}
	// docs.go holds the same JSON as a template whose head (info, host,
	// schemes) has placeholders; from "paths" on it is the JSON text.
	goPath := filepath.Join(dir, "docs.go")
	goSrc, err := os.ReadFile(goPath)
	if err != nil {
		return fmt.Errorf("apidoc: %w", err)
	}
	oldTail, err := tail(orig)
	if err != nil {
		return err
	}
	newTail, err := tail(indented)
	if err != nil {
		return err
	}
	if bytes.Count(goSrc, oldTail) != 1 {
		return errors.New("apidoc: docs.go does not hold the JSON of swagger.json once; run swag first")
	}
	if bytes.ContainsRune(newTail, '`') {
		return errors.New("apidoc: a backquote cannot go into the template of docs.go")
	}
	goSrc = bytes.Replace(goSrc, oldTail, newTail, 1)
	for path, b := range map[string][]byte{jsonPath: indented, filepath.Join(dir, "swagger.yaml"): y, goPath: goSrc} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("apidoc: %w", err)
		}
	}
	return nil
}

func tail(b []byte) ([]byte, error) {
	i := bytes.Index(b, []byte("\n    \"paths\": {"))
	if i < 0 {
		return nil, errors.New(`apidoc: no "paths" in the document`)
	}
	return b[i:], nil
}

func patch(doc *spec.Swagger) error {
	for _, name := range StrictBodies {
		def, ok := doc.Definitions[name]
		if !ok {
			return fmt.Errorf("apidoc: no definition %s", name)
		}
		def.AdditionalProperties = &spec.SchemaOrBool{Allows: false}
		doc.Definitions[name] = def
	}
	for name, props := range Patterns {
		def, ok := doc.Definitions[name]
		if !ok {
			return fmt.Errorf("apidoc: no definition %s", name)
		}
		for prop, pattern := range props {
			p, ok := def.Properties[prop]
			if !ok {
				return fmt.Errorf("apidoc: no property %s in %s", prop, name)
			}
			p.Pattern = pattern
			def.Properties[prop] = p
		}
		doc.Definitions[name] = def
	}
	if doc.Paths == nil {
		return errors.New("apidoc: no paths")
	}
	paths := make([]string, 0, len(doc.Paths.Paths))
	for p := range doc.Paths.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var missing []string
	for _, p := range paths {
		item := doc.Paths.Paths[p]
		for method, op := range map[string]*spec.Operation{
			http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
			http.MethodPatch: item.Patch, http.MethodDelete: item.Delete,
		} {
			if op == nil || op.Responses == nil {
				continue
			}
			for code, r := range op.Responses.StatusCodeResponses {
				if code < 300 {
					continue
				}
				ex, ok := api.ResponseExample(method, p, code)
				if !ok {
					missing = append(missing, method+" "+p+" "+strconv.Itoa(code))
					continue
				}
				r.Examples = map[string]any{"application/json": ex}
				op.Responses.StatusCodeResponses[code] = r
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("apidoc: api.ResponseExample has no example for %s", strings.Join(missing, ", "))
	}
	return nil
}
