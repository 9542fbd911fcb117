# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_omadmctl_global_optspecs
    string join \n json h/help V/version
end

function __fish_omadmctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_omadmctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_omadmctl_using_subcommand
    set -l cmd (__fish_omadmctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c omadmctl -n "__fish_omadmctl_needs_command" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -s V -l version -d 'Print version'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "status" -d 'The daemon\'s state and version'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "accounts" -d 'The DM accounts (the same as `account list`)'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "account" -d 'Add, remove and look at DM accounts without restarting the daemon'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "history" -d 'Recent DM sessions, newest first'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "session" -d 'Sessions'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "tree" -d 'The management tree (read-only; secrets and "No Get" nodes never shown)'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "alert" -d 'Generic Alerts'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "agent" -d 'Act as a SHOW agent in this terminal: print the pages servers ask the user to see (with --json, a JSON line each)'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "notify" -d 'Hand the daemon a DM Notification, as another transport (an SMS bridge) would: one from a file, or one made up here for a server to test the wake-up path'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "reload" -d 'Make the daemon read its configuration and /etc/omadmd/bootstrap.d again (as `systemctl reload omadmd` does): new and changed bootstrap files are applied, and what changed is said, with the settings that need a restart'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "monitor" -d 'Print what the daemon does as it happens, one line each (JSON lines with --json): sessions starting and finishing, alerts queued and delivered, notifications accepted, SHOW agents coming and going, the daemon itself. Runs until interrupted'
complete -c omadmctl -n "__fish_omadmctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand status" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand accounts" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand accounts" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -f -a "list" -d 'Every account, with its last session, queue and owed session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -f -a "show" -d 'One account and where it stands'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -f -a "add" -d 'Provision accounts from a bootstrap file (the format of /etc/omadmd/bootstrap.d, docs/bootstrap.md), applied at once as a bootstrap: each account is owed a session with BootstrapComplete, which starts right away'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -f -a "remove" -d 'Remove a server\'s account and what only it owned (the MO instances it created, its queued alerts, subscriptions and registrations), in one transaction. Its session history stays'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and not __fish_seen_subcommand_from list show add remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from show" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from add" -l dry-run -d 'Check it and say what it would change; change nothing'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from add" -l replace -d 'Re-bootstrap: replace the account of a server that has one already (by default only the file name that provisioned it may change it)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from add" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from remove" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every account, with its last session, queue and owed session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "show" -d 'One account and where it stands'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "add" -d 'Provision accounts from a bootstrap file (the format of /etc/omadmd/bootstrap.d, docs/bootstrap.md), applied at once as a bootstrap: each account is owed a session with BootstrapComplete, which starts right away'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a server\'s account and what only it owned (the MO instances it created, its queued alerts, subscriptions and registrations), in one transaction. Its session history stays'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand history" -l limit -d 'How many' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand history" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand history" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and not __fish_seen_subcommand_from start cancel help" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and not __fish_seen_subcommand_from start cancel help" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and not __fish_seen_subcommand_from start cancel help" -f -a "start" -d 'Ask for a client-initiated session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and not __fish_seen_subcommand_from start cancel help" -f -a "cancel" -d 'End a running session cleanly: the server sees the connection end, the commands already applied stay, the history says "cancelled". Without an argument, the one session running'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and not __fish_seen_subcommand_from start cancel help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from start" -l server -d 'With this server only (default: every server)' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from start" -l timeout -d 'Wait at most this long (implies --wait; default 900 with --wait). The session goes on in the daemon; `omadmctl session cancel` ends it' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from start" -l wait -d 'Wait until it finishes, showing what it does (packages, commands) as it goes, and report how it went (exit 1 unless it ended normally)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from start" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from cancel" -l server -d 'The session running with this server' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from cancel" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "start" -d 'Ask for a client-initiated session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'End a running session cleanly: the server sees the connection end, the commands already applied stay, the history says "cancelled". Without an argument, the one session running'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and not __fish_seen_subcommand_from list get configure help" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and not __fish_seen_subcommand_from list get configure help" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and not __fish_seen_subcommand_from list get configure help" -f -a "list" -d 'The MO instances'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and not __fish_seen_subcommand_from list get configure help" -f -a "get" -d 'The data at a ClientURI (application/dmmo+json)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and not __fish_seen_subcommand_from list get configure help" -f -a "configure" -d 'Make sure the tree holds an MO: when it has no instance, fetch it from the ServerURI a server gave for it with DEFAULT (TS §5.3.10), and say where it came from'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and not __fish_seen_subcommand_from list get configure help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from get" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from configure" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from configure" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "list" -d 'The MO instances'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "get" -d 'The data at a ClientURI (application/dmmo+json)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "configure" -d 'Make sure the tree holds an MO: when it has no instance, fetch it from the ServerURI a server gave for it with DEFAULT (TS §5.3.10), and say where it came from'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand tree; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and not __fish_seen_subcommand_from send help" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and not __fish_seen_subcommand_from send help" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and not __fish_seen_subcommand_from send help" -f -a "send" -d 'Queue a Generic Alert for a server; it is sent in the next session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and not __fish_seen_subcommand_from send help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -l server -d 'The server\'s id' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -l type -d 'AlertType URN' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -l source -d 'SourceURI' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -l mark -d 'Mark (fatal, critical, minor, warning, informational, harmless, indeterminate)' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -l data -d 'Data: a JSON object (sent with DataType application/json)' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from send" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "send" -d 'Queue a Generic Alert for a server; it is sent in the next session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand alert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand agent" -l open -d 'Also open them in a browser (gio open, else xdg-open). A launch that fails is reported to the server as a failure, not as shown'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand agent" -l ask -d 'Ask on the terminal first (y/N); no, or no answer before the daemon gives up (sessions.show-timeout-secs), tells the server the user declined (507)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand agent" -l decline -d 'Decline every request (the server is told the user refused)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand agent" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand agent" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l server -d 'Make a notification for this server (its SERVER-ID) instead' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l notification-id -d 'Its NOTIFICATION-ID (the server\'s own id for the wake-up; sessions report it)' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l secret -d 'Sign it with this notification secret (base64; the account\'s Auth/Noti/Secret). The command line is visible to other users: prefer --secret-file' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l secret-file -d 'Read the base64 notification secret from this file' -r -F
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l auth-data -d 'The account\'s notification auth-data (base64; Auth/Noti/Data) for the digest' -r
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l out -d 'Write the notification to this file instead of handing it to the daemon' -r -F
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l req-mos -d 'Ask the server to send the MO list (REQ-MOS)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l wap -d 'Wrap it in a connectionless WAP Push, as over SMS'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand notify" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand reload" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand reload" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand monitor" -l json -d 'Print JSON instead of text'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand monitor" -s h -l help -d 'Print help'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "status" -d 'The daemon\'s state and version'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "accounts" -d 'The DM accounts (the same as `account list`)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "account" -d 'Add, remove and look at DM accounts without restarting the daemon'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "history" -d 'Recent DM sessions, newest first'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "session" -d 'Sessions'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "tree" -d 'The management tree (read-only; secrets and "No Get" nodes never shown)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "alert" -d 'Generic Alerts'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "agent" -d 'Act as a SHOW agent in this terminal: print the pages servers ask the user to see (with --json, a JSON line each)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "notify" -d 'Hand the daemon a DM Notification, as another transport (an SMS bridge) would: one from a file, or one made up here for a server to test the wake-up path'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "reload" -d 'Make the daemon read its configuration and /etc/omadmd/bootstrap.d again (as `systemctl reload omadmd` does): new and changed bootstrap files are applied, and what changed is said, with the settings that need a restart'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "monitor" -d 'Print what the daemon does as it happens, one line each (JSON lines with --json): sessions starting and finishing, alerts queued and delivered, notifications accepted, SHOW agents coming and going, the daemon itself. Runs until interrupted'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and not __fish_seen_subcommand_from status accounts account history session tree alert agent notify reload monitor help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "list" -d 'Every account, with its last session, queue and owed session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "show" -d 'One account and where it stands'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "add" -d 'Provision accounts from a bootstrap file (the format of /etc/omadmd/bootstrap.d, docs/bootstrap.md), applied at once as a bootstrap: each account is owed a session with BootstrapComplete, which starts right away'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "remove" -d 'Remove a server\'s account and what only it owned (the MO instances it created, its queued alerts, subscriptions and registrations), in one transaction. Its session history stays'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "start" -d 'Ask for a client-initiated session'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "cancel" -d 'End a running session cleanly: the server sees the connection end, the commands already applied stay, the history says "cancelled". Without an argument, the one session running'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from tree" -f -a "list" -d 'The MO instances'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from tree" -f -a "get" -d 'The data at a ClientURI (application/dmmo+json)'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from tree" -f -a "configure" -d 'Make sure the tree holds an MO: when it has no instance, fetch it from the ServerURI a server gave for it with DEFAULT (TS §5.3.10), and say where it came from'
complete -c omadmctl -n "__fish_omadmctl_using_subcommand help; and __fish_seen_subcommand_from alert" -f -a "send" -d 'Queue a Generic Alert for a server; it is sent in the next session'
