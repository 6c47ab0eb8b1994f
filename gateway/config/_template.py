"""The configuration ``ech-gateway init DIR`` writes, and the folders it needs."""

#: Directories ``init`` creates, relative to the configuration's directory.
INITIAL_DIRS = (
    "conf.d",
    "registry/outbox",
    "registry/done",
    "registry/inbox",
    "sedex/outbox",
    "sedex/inbox",
    "sedex/receipts",
    "sedex/processed",
    "documents",
)

#: The text of the initial ``gateway.toml``.
INITIAL_CONFIG = """\
# ech-gateway configuration, written by `ech-gateway init`.
#
# Relative paths are relative to the directory of this file.
# Files in conf.d/*.toml next to it override keys of this file (in name
# order, key by key); environment variables override both:
#   ECH_GATEWAY_<SECTION>__<KEY>, e.g. ECH_GATEWAY_GATEWAY__LOG_LEVEL=DEBUG
#   or ECH_GATEWAY_PARTNERS__CANTON__RETRY__MAX_ATTEMPTS=3.
# Any text key can be read from a file instead, for secrets:
#   password_file = "/run/credentials/ech-gateway/password"
# Durations take a unit: "500ms", "30s", "5m", "2h", "7d" (keep = 90 is
# refused: 90 seconds or 90 days?); only 0 needs none.
# Sizes take a unit too ("20MiB", "512KiB"); a bare number is bytes, and one
# below 1024 is refused as a forgotten unit.
# Every key is described in docs/configuration.md.
# Check this file with `ech-gateway check-config`.

[gateway]
# node_id = "gateway-1"     # name of this node in logs; default: the host name
# data_dir = "."            # the gateway's own files; default: this file's directory
log_level = "INFO"          # DEBUG, INFO, WARNING or ERROR
log_format = "text"         # "json" writes one JSON object per line
drain_timeout = "30s"       # on stop, how long work in progress may take to finish
summary_interval = "5m"     # when busy, log counts (received, delivered, ...) this often

[store]
# Messages, deliveries and the journal. Back this file up.
backend = "sqlite"
path = "gateway.db"

[retention]
# A settled message (delivered, not relevant, a handled quarantine, ...) keeps
# its input and payloads this long after its last change; then they are
# deleted, and its record and journal entries stay. A person who left the
# register (moveOut, death, deletedInRegister) is deleted as long after,
# once those messages are; residents stay. A receipt that matched no
# delivery keeps its bytes as long after it came. 0 keeps them forever.
# The files moved to registry/done and sedex/receipts-done are deleted as
# long after they were moved there (keep_files = "30d" to set another time).
keep = "90d"
warn_free_below = "1GiB"    # warn (log, journal, status) while the database's disk has less free

[limits]
# Bounds on input from outside, against oversized files and zip bombs.
max_document_bytes = "128MiB"  # a baseDelivery of about 28,000 residents
max_zip_entries = 1000
max_zip_bytes = "200MiB"    # total uncompressed size of one zip
max_zip_ratio = 100
max_attachments = 20        # document files one outgoing message carries
max_attachment_bytes = "20MiB"  # all document files of one outgoing message together

[documents]
# Scans that rules attach to messages (`documents` in a rule's `then`):
# patterns relative to this folder, naming this message's person or case
# with placeholders: "permit-{vn}.pdf", "{vn}/*.pdf" (a folder per person),
# "{local_id}/*.pdf", "{reference}/*.pdf" (per case). The gateway only reads here.
dir = "documents"
status = "undefined"        # eCH-0039 documentStatus of attached documents
settle = "5s"               # a document modified more recently is not sent yet

[validation]
# "project": the XSDs shipped with the gateway. "official": the official eCH
# XSDs, with official_catalog = "path/to/catalog.xml" naming their catalog.
schemas = "project"

[dispatcher]
batch_size = 500            # deliveries claimed at once
lease = "60s"               # a claim another node may take over after this long

# ---------------------------------------------------------------------------
# Sources: where messages come from.
# This one takes the XML files (and zips with files/) the registry software
# writes to registry/outbox; each file is moved to registry/done once it is
# stored. A file is taken once it has stopped changing; one that still looks
# unfinished (empty, XML cut short, zip without its end) after `grace` is
# quarantined. Links, FIFOs and the like are moved to registry/outbox/set-aside.
# eCH-0223 files without a version attribute (1.0 to 1.4 have none) are read
# as the version of [partners.registry] below: 1.5 unless set there, so they
# are quarantined until ech0223_version names the registry's version.
# ---------------------------------------------------------------------------
[sources.registry]
type = "folder"
path = "registry/outbox"
pattern = ["*.xml", "*.zip"]
done_dir = "registry/done"
settle = "1s"               # unchanged this long (and on two scans) before a file is taken
grace = "5m"                # how long a file may look unfinished before it is quarantined

# ---------------------------------------------------------------------------
# Partners: where messages go.
# The cantonal migration office, reached through the folders of the sedex
# client installed on this machine.
# ---------------------------------------------------------------------------
[partners.canton]
transport = "sedex"
ech0223_version = "1.5"     # or 1.4, 1.3, 1.0: messages are converted to it
unsupported_event = "othercase"  # an event its version lacks: othercaseOfMigration, or "refuse"
receipt_timeout = "1h"      # a sent message without sedex receipt after this is overdue
failing_after = "1h"        # `status` says the partner is failing once sends fail this long

[partners.canton.retry]
# Failed sends are retried with growing waits: 1s, 2s, 4s, ... up to 1h,
# for 2 days (or 100 attempts); then the message becomes a dead letter.
# A fault on this machine (the sedex outbox missing, read-only or full)
# pauses the partner instead: it burns no attempt.
max_attempts = 100
max_age = "2d"
initial = "1s"
maximum = "1h"

[partners.canton.sedex]
# The sedex client's folders; point them at the client's own folders.
outbox = "sedex/outbox"
inbox = "sedex/inbox"
receipts = "sedex/receipts"
processed = "sedex/processed"
sender_id = "T1-2511-1"     # our sedex participant ID (a commune's test participant)
recipient_id = "T2-2-1"     # the canton's sedex participant ID (its test participant)
# The sedex message type of these messages. The real integer comes from the
# sedex registration; 1900223 is a test type in the cantonal range.
message_type = 1900223
envelope_version = 1        # eCH-0090 envelope version: 1 or 2
pair_grace = "60s"          # how long one file of an envelope/data pair may wait for the other
settle = "1s"               # sedex writes in place: inbox and receipt files must stop changing
grace = "5m"                # how long an inbox or receipt file may look unfinished

# ---------------------------------------------------------------------------
# The way back: what the canton sends (requests, answers, negative
# eventReports) is not decided by the rules. Its person is found (VN, local
# id, then names and date of birth; else the registry plugin is asked), and
# it is delivered to the registry: one file per message in registry/inbox,
# named ech0223-<delivery id, 10 digits>-<attempt uuid>.xml (.zip with its
# documents under files/). A message whose person is not found, or not found
# alone, waits as needs_review: `ech-gateway messages assign ID --person VN`
# sends it on.
# While registry/inbox is missing, the messages wait; none is lost.
# ---------------------------------------------------------------------------
[partners.registry]
transport = "folder"
role = "registry"
# The eCH-0223 version the registry software writes and reads (default 1.5).
# A registry on 1.4 or older writes files without a version attribute, which
# are quarantined while this says 1.5: set its version, e.g.
# ech0223_version = "1.4"

[partners.registry.folder]
path = "registry/inbox"

# ---------------------------------------------------------------------------
# Rules: which messages concern the migration office, and who gets them.
# Evaluated in order: the first rule whose `match` holds decides (a rule
# without `match` always holds). Every decision is journaled with its rule.
# `ech-gateway rules explain FILE` shows what they decide for a file, sending
# nothing; README, section "Rules", lists what a rule can match and set.
# Messages in eCH-0020 events without eCH-0223 counterpart (changeSex, ...)
# and baseDelivery are not relevant before any rule is asked.
# ---------------------------------------------------------------------------
# A rule may attach scans from [documents] dir: every pattern must match a
# file, else the message is quarantined until the file is there (then
# `messages replay`), e.g.
#   then = { route_to = ["canton"], documents = ["{vn}/permit-*.pdf"] }
[[rules]]
name = "foreign-nationals"
description = "the person was foreign or stateless before the event: the migration office's concern"
match = { nationality = ["foreign", "stateless"] }
then = { route_to = ["canton"] }

[[rules]]
name = "registry-ech0223"
description = "the registry wrote eCH-0223 itself and it names no nationality: the registry's choice stands"
match = { nationality = ["unknown"], fields = { format = "eCH-0223" } }
then = { route_to = ["canton"] }

[[rules]]
name = "everyone-else"
[rules.then]
not_relevant = "the person was not a foreign national before the event (Swiss, or nationality unknown)"
"""
