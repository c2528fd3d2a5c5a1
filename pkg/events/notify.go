package events

import "time"

// NotificationSent records one mail handed to the SMTP server.
type NotificationSent struct {
	Key        string   `json:"key" validate:"required,max=512"`
	Kind       string   `json:"kind" validate:"required,max=64"`
	Recipients []string `json:"recipients" validate:"required,min=1"`
	Subject    string   `json:"subject" validate:"required,max=512"`
	Recovery   bool     `json:"recovery"`
	// Cause is the event that triggered the mail.
	Cause ID `json:"cause" validate:"required,max=64"`
	// Refused lists the recipients the SMTP server refused for good, each
	// as "address: reply"; the mail went to the others.
	Refused []string `json:"refused,omitempty" validate:"omitempty,max=64,dive,max=600"`
}

// EventType implements Event.
func (NotificationSent) EventType() Type { return "NotificationSent" }

// NotificationSuppressed records a mail not sent because the same error was
// mailed within watchdog.notification.interval.
type NotificationSuppressed struct {
	Key    string    `json:"key" validate:"required,max=512"`
	Kind   string    `json:"kind" validate:"required,max=64"`
	Reason string    `json:"reason" validate:"required,max=512"`
	Until  time.Time `json:"until" validate:"required"`
	Cause  ID        `json:"cause" validate:"required,max=64"`
}

// EventType implements Event.
func (NotificationSuppressed) EventType() Type { return "NotificationSuppressed" }
