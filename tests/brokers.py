"""A real Mosquitto for tests: started on a free port, killed and restarted at will (the machine's
own broker on 1883 stays untouched). See edge/local_broker.py."""

from edge.local_broker import LocalMosquitto as Mosquitto, wait_port

__all__ = ["Mosquitto", "wait_port"]
