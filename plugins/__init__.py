"""The editor plugins, installed as ``nst_server.plugins`` so ``nst-server install-plugin`` finds
them in a wheel too. The server imports the stdlib-only modules it shares with them from here
(``nst_filelock``, ``nst_launcher``); the editors never import this package: the installer
copies the shared modules beside each plugin."""
