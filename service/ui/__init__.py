"""The moderators' web UI: server-rendered pages under ``/ui`` on the API's app, logged
in through each site's OpenID Connect issuer, with server-side sessions (see
``docs/moderation-ui.md``). Its views are as thin as the API's: they call the same
domain functions (``service/moderation``) and render what those return."""
