"""The federation's PKI: a certificate authority, mutual TLS at run time, and user assertions."""
