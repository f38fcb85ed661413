"""Webhooks on the wire: signatures (:mod:`.signature`, what receivers verify), where a
hook may point (:mod:`.targets`) and sending one request (:mod:`.sender`). Standard
library only; the hooks and their deliveries as data are ``service/moderation``'s."""
