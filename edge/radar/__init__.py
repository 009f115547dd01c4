"""Radar and AIS: feeds, decoders (NMEA 0183, ASTERIX, AIS) and the track store."""
