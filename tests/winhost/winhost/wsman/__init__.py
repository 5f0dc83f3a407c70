"""WS-Management layer of winhost: envelopes, faults, Identify, winrm/config and routing."""
