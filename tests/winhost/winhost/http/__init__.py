"""HTTP layer of winhost: listeners (HTTP/HTTPS), keep-alive connections, message encryption."""
