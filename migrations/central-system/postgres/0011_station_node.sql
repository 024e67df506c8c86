-- Which central-system node holds a station's WebSocket. Several nodes share one database: a
-- node that restarts marks only its own stations offline, and a node that notices a socket
-- close late does not mark offline a station that has meanwhile reconnected to another node.
ALTER TABLE stations ADD COLUMN connected_node TEXT;
