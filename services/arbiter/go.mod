module github.com/drwatch/drwatch/services/arbiter

go 1.26
