module aigate.dev/floor-webhook

go 1.25
