// A plugin module whose top level throws something that is not an Error.
throw undefined;
