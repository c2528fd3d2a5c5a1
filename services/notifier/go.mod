module github.com/drwatch/drwatch/services/notifier

go 1.26
