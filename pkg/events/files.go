package events

// FileSyncCompleted says one file-sync run copied and verified every file.
type FileSyncCompleted struct {
	Transport       string  `json:"transport" validate:"oneof=objectstore sftp"`
	Files           int     `json:"files" validate:"gte=0"`
	Bytes           int64   `json:"bytes" validate:"gte=0"`
	DurationSeconds float64 `json:"durationSeconds" validate:"gte=0"`
}

// EventType implements Event.
func (FileSyncCompleted) EventType() Type { return "FileSyncCompleted" }

// FileSyncFailed says a file could not be fetched, verified or written.
type FileSyncFailed struct {
	Transport string `json:"transport" validate:"oneof=objectstore sftp"`
	File      string `json:"file" validate:"max=4096"`
	Reason    string `json:"reason" validate:"required,max=4096"`
	Attempts  int    `json:"attempts" validate:"gte=0"`
}

// EventType implements Event.
func (FileSyncFailed) EventType() Type { return "FileSyncFailed" }
