"""The local explorer: ``seqlab serve CKPT`` (see ``seqlab.serve.app``)."""
