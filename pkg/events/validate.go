package events

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-playground/validator/v10"
)

var (
	siteNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	tokenRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// validate is built once: validator caches struct metadata and is safe for
// concurrent use. It holds no configuration a caller could change.
var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	must(v.RegisterValidation("sitename", func(fl validator.FieldLevel) bool {
		return siteNameRE.MatchString(fl.Field().String())
	}))
	must(v.RegisterValidation("token", func(fl validator.FieldLevel) bool {
		return tokenRE.MatchString(fl.Field().String())
	}))
	return v
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// ValidSiteName reports whether s can name a site (and so a JetStream domain
// and a subject token): lower-case letters, digits and '-', starting with a
// letter, at most 32 characters.
func ValidSiteName(s string) bool { return siteNameRE.MatchString(s) }

// Validate checks an event payload against its struct tags.
func Validate(ev Event) error {
	if ev == nil {
		return fmt.Errorf("%w: nil event", ErrInvalid)
	}
	if err := validate.Struct(ev); err != nil {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, ev.EventType(), describe(err))
	}
	return nil
}

// ValidateEnvelope checks the envelope fields and that the schema version is
// one this build understands.
func ValidateEnvelope(env *Envelope) error {
	if err := validate.Struct(env); err != nil {
		return fmt.Errorf("%w: envelope %q: %s", ErrInvalid, env.ID, describe(err))
	}
	if env.SchemaVersion > SchemaVersion {
		return fmt.Errorf("%w: envelope %q: schemaVersion %d is newer than this build understands (%d)", ErrInvalid, env.ID, env.SchemaVersion, SchemaVersion)
	}
	return nil
}

// describe turns validator errors into "field: problem" phrases.
func describe(err error) string {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return err.Error()
	}
	parts := make([]string, 0, len(verrs))
	for _, fe := range verrs {
		ns := fe.Namespace()
		if _, rest, ok := strings.Cut(ns, "."); ok {
			ns = rest
		}
		parts = append(parts, fmt.Sprintf("%s: %s", ns, problem(fe)))
	}
	return strings.Join(parts, "; ")
}

func problem(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "oneof":
		return fmt.Sprintf("must be one of [%s], got %q", fe.Param(), fmt.Sprint(fe.Value()))
	case "gte", "min":
		return fmt.Sprintf("must be at least %s, got %v", fe.Param(), fe.Value())
	case "lte", "max":
		return fmt.Sprintf("must be at most %s, got %v", fe.Param(), fe.Value())
	case "sitename":
		return fmt.Sprintf("must be lower-case letters, digits or '-', starting with a letter, at most 32 characters, got %q", fe.Value())
	case "token":
		return fmt.Sprintf("must be letters, digits, '_' or '-', at most 64 characters, got %q", fe.Value())
	default:
		return fmt.Sprintf("fails %q (value %v)", fe.Tag(), fe.Value())
	}
}
