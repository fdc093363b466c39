<#
.SYNOPSIS
    Makes `mt5gate bridge --terminal official` start with Windows next to the MetaTrader 5
    terminal: a scheduled task at the logon of the terminal's user (the default), or a Windows
    service through NSSM (-Mode Service). -Uninstall removes what it made.

.DESCRIPTION
    Why a task by default: the MetaTrader5 package reaches the terminal through a named pipe of
    the same Windows session. A service runs in session 0, where a terminal started by a user is
    out of reach ("Pipe server didn't answer", "running as another Windows user or session").
    The task runs run-bridge.ps1 in the user's session, which restarts the bridge when it stops
    on its own (not after exit code 2, a usage problem) and keeps its logs in -LogDir.
    -Mode Service registers the bridge with NSSM, which restarts it the same way and rotates its
    logs; use it only where the terminal itself runs in the service's session (started by the
    same service account), and check a terminal_info() call after a reboot.

    It checks that -Python can import MetaTrader5 and mt5gate; makes the token file unless it
    exists (32 random bytes, base64url, UTF-8 without a BOM) and lets only the bridge's account,
    SYSTEM and Administrators read it; registers the task or the service; and when -ListenHost
    is not loopback, opens -Port in Windows Firewall for the -AllowFrom addresses only.

    Depends on: Windows 10 / Windows Server 2016 or newer, Windows PowerShell 5.1 (its
    ScheduledTasks, NetSecurity and CimCmdlets modules), run as Administrator; a Windows Python
    3.11 or newer with `python -m pip install mt5gate-0.2.0-py3-none-any.whl MetaTrader5` (the
    wheel: docs/install.md); the terminal installed, logged in once by hand with Algo Trading
    on, and started at the user's logon (a shortcut in shell:startup); for -Mode Service, NSSM
    2.24 (nssm.exe on PATH, or -Nssm).

    Not run where it was written (no Windows there): see docs/deploy.md#windows.

.EXAMPLE
    .\install-bridge.ps1 -Python 'C:\Program Files\Python312\python.exe' -User 'VPS01\trader'

.EXAMPLE
    .\install-bridge.ps1 -Python C:\Python312\python.exe -ListenHost 10.0.0.5 -AllowFrom 10.0.0.7 `
        -TlsCert C:\ProgramData\mt5gate\cert.pem -TlsKey C:\ProgramData\mt5gate\key.pem

.EXAMPLE
    .\install-bridge.ps1 -Uninstall
#>
[CmdletBinding()]
param(
    [string] $Python,
    [string] $Name = 'mt5gate-bridge',
    [string] $User = "$env:USERDOMAIN\$env:USERNAME",
    [string] $ListenHost = '127.0.0.1',
    [ValidateRange(1, 65535)] [int] $Port = 18812,
    [string] $TokenFile = (Join-Path $env:ProgramData 'mt5gate\bridge-token'),
    [string] $TlsCert,
    [string] $TlsKey,
    [string[]] $AllowFrom = @(),
    [string] $LogDir = (Join-Path $env:ProgramData 'mt5gate\logs'),
    [ValidateSet('Task', 'Service')] [string] $Mode = 'Task',
    [string] $Nssm = 'nssm.exe',
    [pscredential] $ServiceCredential,
    [switch] $Uninstall
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$Base = Join-Path $env:ProgramData 'mt5gate'
$WindowsPowerShell = Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe'
$Exposed = @('127.0.0.1', '::1', 'localhost') -notcontains $ListenHost

function ConvertTo-Argument([string] $Value) {
    # One argument as CreateProcess splits it: quoted when it holds spaces or quotes.
    if ($Value -notmatch '[\s"]') { return $Value }
    return '"' + ($Value -replace '"', '\"') + '"'
}

function Invoke-Nssm {
    & $Nssm @args
    if ($LASTEXITCODE -ne 0) { throw "nssm $($args -join ' ') failed (exit code $LASTEXITCODE)" }
}

function Assert-Administrator {
    $identity = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
    if (-not $identity.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'run this script from an elevated PowerShell (Run as Administrator)'
    }
}

function Stop-Bridge {
    # The bridge processes of this port, which a stopped task may leave behind.
    Get-CimInstance Win32_Process |
        Where-Object { $_.CommandLine -like '*mt5gate.bridge.cli*' -and $_.CommandLine -like "*--port $Port *" } |
        ForEach-Object { Stop-Process -Id $_.ProcessId -Force }
}

function Remove-Bridge {
    if (Get-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $Name
        Unregister-ScheduledTask -TaskName $Name -Confirm:$false
    }
    if (Get-Service -Name $Name -ErrorAction SilentlyContinue) {
        Invoke-Nssm stop $Name
        Invoke-Nssm remove $Name confirm
    }
    Stop-Bridge
    Get-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
}

function Resolve-Python {
    $path = $Python
    if (-not $path) {
        $found = Get-Command python.exe -ErrorAction SilentlyContinue
        if ($found) { $path = $found.Source }
    }
    if (-not $path -or -not (Test-Path -LiteralPath $path)) {
        throw 'give -Python: the python.exe that has MetaTrader5 and mt5gate installed'
    }
    & $path -c 'import MetaTrader5, mt5gate.bridge.cli' | Out-Null
    if ($LASTEXITCODE -ne 0) {
        throw "$path cannot import MetaTrader5 and mt5gate; install them with: & '$path' -m pip install mt5gate-<version>-py3-none-any.whl MetaTrader5 (docs/install.md)"
    }
    return $path
}

function New-TokenFile([string] $Reader) {
    New-Item -ItemType Directory -Force -Path (Split-Path -Parent $TokenFile) | Out-Null
    if (-not (Test-Path -LiteralPath $TokenFile)) {
        $bytes = New-Object byte[] 32
        $random = [Security.Cryptography.RandomNumberGenerator]::Create()
        try { $random.GetBytes($bytes) } finally { $random.Dispose() }
        $token = [Convert]::ToBase64String($bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_')
        [IO.File]::WriteAllText($TokenFile, $token + "`n", (New-Object Text.UTF8Encoding $false))
        Write-Host "A new token is in $TokenFile; copy that file to the gateway's host (its token_file)."
    }
    # Only the bridge's account, SYSTEM and Administrators; nothing inherited.
    & icacls.exe $TokenFile /inheritance:r /grant:r "${Reader}:(R)" '*S-1-5-18:(F)' '*S-1-5-32-544:(F)' | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "icacls could not restrict $TokenFile" }
}

function Register-BridgeTask([string] $PythonPath) {
    $runner = Join-Path $Base 'run-bridge.ps1'
    Copy-Item -LiteralPath (Join-Path $PSScriptRoot 'run-bridge.ps1') -Destination $runner -Force
    $runnerArgs = @('-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass',
                    '-WindowStyle', 'Hidden', '-File', $runner, '-Python', $PythonPath,
                    '-TokenFile', $TokenFile, '-ListenHost', $ListenHost, '-Port', "$Port",
                    '-LogDir', $LogDir)
    if ($TlsCert) { $runnerArgs += @('-TlsCert', $TlsCert, '-TlsKey', $TlsKey) }
    $argumentLine = ($runnerArgs | ForEach-Object { ConvertTo-Argument $_ }) -join ' '
    $action = New-ScheduledTaskAction -Execute $WindowsPowerShell -Argument $argumentLine -WorkingDirectory $Base
    $trigger = New-ScheduledTaskTrigger -AtLogOn -User $User
    $principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Limited
    $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) `
        -MultipleInstances IgnoreNew -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
        -StartWhenAvailable -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1)
    Register-ScheduledTask -TaskName $Name -Action $action -Trigger $trigger -Principal $principal `
        -Settings $settings -Force `
        -Description 'mt5gate bridge next to the MetaTrader 5 terminal (deploy/windows/run-bridge.ps1)' |
        Out-Null
    Write-Host "Registered the task ${Name}: it starts at the next logon of $User (now: Start-ScheduledTask -TaskName $Name)."
}

function Register-BridgeService([string] $PythonPath) {
    if (-not (Get-Command $Nssm -ErrorAction SilentlyContinue)) {
        throw '-Mode Service needs NSSM 2.24: nssm.exe on PATH, or -Nssm C:\path\to\nssm.exe'
    }
    $bridgeArgs = @('-m', 'mt5gate.bridge.cli', '--terminal', 'official', '--host', $ListenHost,
                    '--port', "$Port", '--token-file', $TokenFile)
    if ($TlsCert) { $bridgeArgs += @('--tls-cert', $TlsCert, '--tls-key', $TlsKey) }
    Invoke-Nssm install $Name $PythonPath
    Invoke-Nssm set $Name AppParameters (($bridgeArgs | ForEach-Object { ConvertTo-Argument $_ }) -join ' ')
    Invoke-Nssm set $Name AppDirectory $Base
    Invoke-Nssm set $Name DisplayName 'mt5gate bridge'
    Invoke-Nssm set $Name Description 'mt5gate bridge next to the MetaTrader 5 terminal'
    Invoke-Nssm set $Name Start SERVICE_AUTO_START
    Invoke-Nssm set $Name AppStdout (Join-Path $LogDir 'bridge.out.log')
    Invoke-Nssm set $Name AppStderr (Join-Path $LogDir 'bridge.err.log')
    Invoke-Nssm set $Name AppRotateFiles 1
    Invoke-Nssm set $Name AppRotateOnline 1
    Invoke-Nssm set $Name AppRotateBytes 10485760
    # Exit code 2 is a usage problem: stop there. Anything else: start again after 5 s.
    Invoke-Nssm set $Name AppExit Default Restart
    Invoke-Nssm set $Name AppExit 2 Exit
    Invoke-Nssm set $Name AppRestartDelay 5000
    # Stop: Ctrl+C first (the bridge closes its connections), up to 15 s.
    Invoke-Nssm set $Name AppStopMethodConsole 15000
    if ($ServiceCredential) {
        # Through CIM, so the password is on no command line. The account needs the
        # "Log on as a service" right (secpol.msc, Local Policies, User Rights Assignment).
        $service = Get-CimInstance Win32_Service -Filter "Name = '$Name'"
        $changed = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments @{
            StartName = $ServiceCredential.UserName
            StartPassword = $ServiceCredential.GetNetworkCredential().Password
        }
        if ($changed.ReturnValue -ne 0) {
            throw "could not set the service's account (Win32_Service.Change returned $($changed.ReturnValue))"
        }
    }
    Invoke-Nssm start $Name
    Write-Host "Registered and started the service $Name (logs in $LogDir)."
}

Assert-Administrator
if ($Uninstall) {
    Remove-Bridge
    Write-Host "Removed $Name; the token file $TokenFile is left in place."
    return
}
if (($TlsCert -and -not $TlsKey) -or ($TlsKey -and -not $TlsCert)) {
    throw 'TLS needs both -TlsCert and -TlsKey'
}
if ($Exposed -and $AllowFrom.Count -eq 0) {
    throw "-ListenHost $ListenHost is not loopback: give -AllowFrom with the gateway hosts' addresses"
}
if ($Exposed -and -not $TlsCert) {
    # mt5gate serve speaks plain TCP to bridges; -TlsCert/-TlsKey serve clients that bring TLS.
    Write-Warning "the bridge listens on $ListenHost without TLS: keep that network private (a LAN, a VPN)"
}

$PythonPath = Resolve-Python
if ($Mode -eq 'Task') {
    $reader = $User
} elseif ($ServiceCredential) {
    $reader = $ServiceCredential.UserName
} else {
    $reader = '*S-1-5-18'  # LocalSystem, NSSM's default account
}
# The folder of the task's script and the service's working directory: the bridge's account
# reads it, only SYSTEM and Administrators change it.
New-Item -ItemType Directory -Force -Path $Base | Out-Null
& icacls.exe $Base /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' "${reader}:(OI)(CI)RX" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls could not restrict $Base" }
New-TokenFile $reader
New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
& icacls.exe $LogDir /grant "${reader}:(OI)(CI)M" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls could not let $reader write to $LogDir" }

Remove-Bridge
if ($Exposed) {
    New-NetFirewallRule -Name $Name -DisplayName "mt5gate bridge (TCP $Port)" -Direction Inbound `
        -Action Allow -Protocol TCP -LocalPort $Port -RemoteAddress $AllowFrom -Profile Any | Out-Null
}
if ($Mode -eq 'Task') { Register-BridgeTask $PythonPath } else { Register-BridgeService $PythonPath }

$shown = if ($Exposed) { $ListenHost } else { '127.0.0.1' }
Write-Host "Gateways reach it as terminal = `"bridge://${shown}:$Port`" with token_file = a copy of $TokenFile."
