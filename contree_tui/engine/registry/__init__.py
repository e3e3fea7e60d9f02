"""The OCI distribution client (references, auth, manifests, blobs) and the registry image source."""
