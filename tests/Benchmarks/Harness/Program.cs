using SecretsBroker.Benchmarks.Harness;

return args switch
{
    ["requests", var directory, var mount, var count] => Commands.WriteRequests(directory, mount, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture)),
    ["verify", var address, var token, var requestFile, var expectedSource, var responseFile] =>
        await Commands.VerifyAsync(new Uri(address), token, requestFile, expectedSource, responseFile),
    ["audit", var redis, var stream, var afterId] => await Commands.CountAuditAsync(redis, stream, afterId),
    ["jwt", var directory, var issuer, var audience] => Commands.WriteJwt(directory, issuer, audience),
    _ => Commands.Usage(),
};
