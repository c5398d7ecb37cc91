#!/bin/sh
exec ./real-bootstrap "$@"
