module github.com/drwatch/drwatch/services/filesync

go 1.26
