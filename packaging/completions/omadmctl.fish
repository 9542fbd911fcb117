complete --keep-order --exclusive --command omadmctl --arguments "(COMPLETE=fish omadmctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
