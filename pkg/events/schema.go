package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// JSONSchema returns the JSON Schema (draft 2020-12) of an envelope holding
// an event of type t, for consumers outside drwatch. The committed copies
// live in schema/ and are checked against this function by the tests.
func JSONSchema(t Type) ([]byte, error) {
	k, ok := lookup(t)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, t)
	}
	env := schemaOf(reflect.TypeOf(Envelope{}))
	props := env["properties"].(map[string]any)
	props["type"] = map[string]any{"const": string(t)}
	props["payload"] = schemaOf(k.goType)
	doc := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     "https://drwatch.dev/schema/events/" + string(t) + ".json",
		"title":   string(t),
	}
	for key, v := range env {
		doc[key] = v
	}
	return json.MarshalIndent(doc, "", "  ")
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func schemaOf(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		return schemaOf(t.Elem())
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s := schemaOf(f.Type)
			applyRules(s, f.Tag.Get("validate"))
			props[name] = s
			if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

// applyRules carries the validator tags that have a JSON Schema twin.
func applyRules(s map[string]any, tag string) {
	for _, rule := range strings.Split(tag, ",") {
		name, param, _ := strings.Cut(rule, "=")
		switch name {
		case "oneof":
			s["enum"] = strings.Fields(param)
		case "sitename":
			s["pattern"] = siteNameRE.String()
		case "token":
			s["pattern"] = tokenRE.String()
		case "min", "max", "gte", "lte":
			n, err := strconv.ParseFloat(param, 64)
			if err != nil {
				continue
			}
			s[boundKeyword(s["type"], name)] = n
		}
	}
}

func boundKeyword(typ any, rule string) string {
	lower := rule == "min" || rule == "gte"
	switch typ {
	case "string":
		if lower {
			return "minLength"
		}
		return "maxLength"
	case "array":
		if lower {
			return "minItems"
		}
		return "maxItems"
	}
	if lower {
		return "minimum"
	}
	return "maximum"
}
